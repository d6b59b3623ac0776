"""Amadeus: expressive piano-music generation (Performance RNN) and real 8-bit quantization."""
