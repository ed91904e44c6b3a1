"""Local simulator of Lighter's public market-data API (REST + WebSocket).

Run: python -m lighter_sim --port 8765 --markets 20 --rate 5 --seed 1
Tests: lighter_sim.testing.SimulatorProcess starts it in a subprocess.
"""
from .config import SimConfig

__all__ = ["SimConfig"]
