"""sdrlib: the library of the executable book on sparse semantic representations in blind denoisers."""

__version__ = "0.1.0"
