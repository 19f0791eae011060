"""Phrasebook: schema, YAML loader, matcher, rendering and the default phrasebook."""
