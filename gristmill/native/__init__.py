"""Compiled kernels for the per-token loops that Arrow and polars cannot vectorise.

Each ``*.c`` file here is one CPython extension module, built by ``setup.py`` when the
package is installed (a C compiler is needed then, not at run time). Python code imports
them through the stage or model module that owns them, never directly from user code.
"""
