"""What the gateway is measured against: `seed`, the plain fan-out this product starts
from, and `floor`, the least an asyncio fan-out can do. Each is served by gunicorn like
the gateway and answers the same shape."""
