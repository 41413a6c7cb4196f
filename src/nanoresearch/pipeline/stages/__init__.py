"""The stages of a research run, one module each, named after the stage."""
