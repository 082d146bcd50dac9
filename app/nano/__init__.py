"""Deskhand Nano (issue 16): synthetic grounding screens, tiny from-scratch models, training."""
