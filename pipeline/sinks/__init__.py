"""Sinks stage: where new detections go besides the store (`pipeline.sinks.webhook`, over
`pipeline.sinks.endpoint`)."""
