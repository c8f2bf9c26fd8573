"""The configuration: YAML read with line numbers, each section validated by a module of its
own into frozen data classes (`model`), rules compiled for matching (`rules`); `load` ties
them together.

Loaded once at start (and on reload) before any request is served; a bad file never starts.
"""
