"""The simulated world of one run: the field chain (``fleet``), the network (``network``),
the MDCs (``mdc``), an upload's journey (``journey``), the registry of the world's faults
(``faults``) and hostile uploads (``hostile``), wired together by ``world``."""
