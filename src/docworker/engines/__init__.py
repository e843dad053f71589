"""External engines, one module per engine: how each is started, called and checked.

Operations create engines and hand them to parsers through ``ParseContext`` hooks;
parsers never import this package.
"""
