/*
 * Reading int64 arrays handed over from Python (numpy arrays, Arrow buffers): shared by the
 * kernels that take offsets and write per-document results.
 */
#ifndef GRISTMILL_INT64_BUFFER_H
#define GRISTMILL_INT64_BUFFER_H

#include <Python.h>

#include <stdint.h>
#include <string.h>

/* A C-contiguous buffer of native int64 (TypeError otherwise). */
static inline int int64_buffer(PyObject *object, const char *name, int writable, Py_buffer *view) {
    int want = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, want) < 0) {
        PyErr_Clear();
        view->obj = NULL;
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s buffer of int64, not %.100s",
                     name, writable ? " writable" : "", Py_TYPE(object)->tp_name);
        return -1;
    }
    const char *format = view->format ? view->format : "B";
    if (*format == '@' || *format == '=' || *format == '<') format++;
    if (view->itemsize != 8 || (strcmp(format, "q") != 0 && strcmp(format, "l") != 0)) {
        PyErr_Format(PyExc_TypeError, "%s must hold int64, not items of format '%s'", name,
                     view->format ? view->format : "B");
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    if ((uintptr_t)view->buf % sizeof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "%s is not aligned for int64", name);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

#endif
