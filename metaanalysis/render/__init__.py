"""Rendering: the only place that rounds numbers, formats text or draws."""
