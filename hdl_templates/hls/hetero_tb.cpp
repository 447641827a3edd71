// hetero: C simulation test bench of the top function. Usage: hetero_tb INPUTS OUTPUTS
// INPUTS: int64 little-endian: N, then N * HETERO_IN_BEATS * HETERO_IN_LANES raw input values
// (beat by beat, lane by lane). OUTPUTS: N * HETERO_OUT_BEATS * HETERO_OUT_LANES raw output
// values in the same order. Exit 0 on success, 2 on a file error, 5 when TLAST is wrong.
#include <cstdio>
#include <vector>

#include "hetero_top.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s INPUTS OUTPUTS\n", argv[0]);
        return 2;
    }
    std::FILE *fin = std::fopen(argv[1], "rb");
    if (!fin) {
        std::fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    long long n = 0;
    if (std::fread(&n, sizeof n, 1, fin) != 1 || n < 0) {
        std::fprintf(stderr, "%s: no count\n", argv[1]);
        return 2;
    }
    const long long in_per = (long long)HETERO_IN_BEATS * HETERO_IN_LANES;
    const long long out_per = (long long)HETERO_OUT_BEATS * HETERO_OUT_LANES;
    std::vector<long long> in(in_per), out(out_per);
    std::FILE *fout = std::fopen(argv[2], "wb");
    if (!fout) {
        std::fprintf(stderr, "cannot open %s\n", argv[2]);
        return 2;
    }
    hls::stream<axis_in_t> s_axis;
    hls::stream<axis_out_t> m_axis;
    for (long long k = 0; k < n; k++) {
        if (std::fread(in.data(), sizeof(long long), in_per, fin) != (size_t)in_per) {
            std::fprintf(stderr, "%s: truncated at inference %lld\n", argv[1], k);
            return 2;
        }
        for (int b = 0; b < HETERO_IN_BEATS; b++) {
            axis_in_t a;
            for (int l = 0; l < HETERO_IN_LANES; l++) {
                HETERO_IN_T v = hetero::from_raw<HETERO_IN_T>(in[b * HETERO_IN_LANES + l]);
                a.data.range(l * HETERO_IN_T::width + HETERO_IN_T::width - 1, l * HETERO_IN_T::width) =
                    v.range(HETERO_IN_T::width - 1, 0);
            }
            a.keep = -1;
            a.strb = -1;
            a.last = (b == HETERO_IN_BEATS - 1);
            s_axis.write(a);
        }
        hetero_top(s_axis, m_axis);
        for (int b = 0; b < HETERO_OUT_BEATS; b++) {
            axis_out_t a = m_axis.read();
            if ((int)a.last != (b == HETERO_OUT_BEATS - 1)) {
                std::fprintf(stderr, "inference %lld beat %d: TLAST is %d\n", k, b, (int)a.last);
                return 5;
            }
            for (int l = 0; l < HETERO_OUT_LANES; l++) {
                HETERO_OUT_T v;
                v.range(HETERO_OUT_T::width - 1, 0) =
                    a.data.range(l * HETERO_OUT_T::width + HETERO_OUT_T::width - 1, l * HETERO_OUT_T::width);
                out[b * HETERO_OUT_LANES + l] = hetero::raw_of(v);
            }
        }
        std::fwrite(out.data(), sizeof(long long), out_per, fout);
    }
    std::fclose(fin);
    std::fclose(fout);
    return 0;
}
