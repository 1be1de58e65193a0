"""Measurement: rate, distortion, modelability, streaming, and the reports that put them side by side."""
