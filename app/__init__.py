"""The composition root: the command line, the supervisor and the embedded services.

The only package that imports every component; nothing imports it back.
"""
