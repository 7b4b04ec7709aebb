"""The built-in rationale methods, one module each.

Every module in this package is imported here, so each ``@register_method`` class is
registered by name: adding a method is adding a file.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
