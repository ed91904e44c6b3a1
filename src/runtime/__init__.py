"""Thin glue between the pure tracker (`src/tracker`) and the Workers runtime."""
