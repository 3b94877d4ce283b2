import os

# The operator reads this when its handlers are registered (at import): the tests want the
# Channel's stream status reported within a second, not every 30 s.
os.environ.setdefault("KUBECAST_STREAM_STATUS_INTERVAL", "1")
