"""The kernel both services stand on: the error shape, validation, the admin token, HTTP
limits, default ports, and the latency and fault vocabulary. It imports neither service
nor the operator's package (an import contract in `make lint` keeps it so)."""

__version__ = "0.1.0"
