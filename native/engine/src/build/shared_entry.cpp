// Translation unit of the shared library; the C API itself lives in longctx_engine
// (linked whole-archive so every lcx_* symbol is exported).
#include "longctx.h"
