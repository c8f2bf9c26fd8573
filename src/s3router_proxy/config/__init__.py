"""The configuration: YAML read with line numbers, validated into frozen data classes
(`model`), rules compiled for matching (`rules`).

Loaded once at start (and on reload) before any request is served; a bad file never starts.
"""
