"""Paradex mode of the simulator (`python -m lighter_sim --exchange paradex`): REST under
/v1 and the SBE WebSocket at /v1, on Lighter's engine (books, faults, record, control)."""
