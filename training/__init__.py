"""Produces the model: PyX / PyX-R data synthesis and supervised fine-tuning."""
