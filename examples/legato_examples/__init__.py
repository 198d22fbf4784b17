"""Python steps of the example workflows in ``examples/``.

Each module holds the steps of one example. A step is a plain function: the step's ``with``
values arrive as keyword arguments (plus ``ctx`` when the function has such a parameter) and the
returned dict becomes the step's outputs. Every step here only simulates its work: no network,
no files outside the return value, the same outputs for the same inputs.
"""
