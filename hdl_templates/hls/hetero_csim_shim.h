// hetero: minimal stand-ins for Vitis HLS's hls::stream and ap_axiu, used only for C simulation
// with plain g++ (define HETERO_CSIM). Vitis HLS builds use its own <hls_stream.h> and
// <ap_axi_sdata.h> instead. Our own code: a std::deque FIFO with the read/write/empty calls the
// kernels use.
#ifndef HETERO_CSIM_SHIM_H
#define HETERO_CSIM_SHIM_H

#include <cstdio>
#include <cstdlib>
#include <deque>

#include "ap_int.h"

namespace hls {

template <class T>
class stream {
  public:
    stream() {}
    explicit stream(const char *) {}
    void write(const T &v) { q_.push_back(v); }
    T read() {
        if (q_.empty()) {
            std::fprintf(stderr, "hetero csim: read from an empty stream (a layer consumed more beats than were produced)\n");
            std::exit(3);
        }
        T v = q_.front();
        q_.pop_front();
        return v;
    }
    bool empty() const { return q_.empty(); }
    std::size_t size() const { return q_.size(); }

  private:
    std::deque<T> q_;
};

}  // namespace hls

// AXI4-Stream beat with TDATA, TKEEP, TSTRB and TLAST (the fields ap_axiu<W,0,0,0> has).
template <int D, int U, int TI, int TD>
struct ap_axiu {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<1> last;
};

#endif
