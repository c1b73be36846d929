"""What a run leaves for its user: the output folder's files (``files``), the plots
(``plots``), the terminal summary (``summary``) and the progress bar (``progress``)."""
