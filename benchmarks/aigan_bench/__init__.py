"""The pieces of benchmarks/aigan_tables.py (AI-GAN's Tables II, III, IV and VI)."""
