"""Figures and reports (matplotlib PNGs, self-contained HTML)."""
