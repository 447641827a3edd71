// Native Verilator harness for hetero.rtlsim: streams AXI4-Stream inferences through a design
// wrapped in rtlsim_tb.v, with no Python in the cycle loop.
//
// The bench calls rtlsim_edge() (DPI) at every rising clock edge with the design's outputs as
// sampled at that edge; it returns the design's inputs for the next cycle. This file keeps the
// handshake bookkeeping, the backpressure generator and stall detection; main() only toggles
// the clock. RTLSIM_TRACE (from rtlsim_config.h) enables an FST trace.
//
// Usage: rtlsim STIM RESULT N B_IN B_OUT WORDS_IN WORDS_OUT PROBE_WORDS BP_THRESHOLD SEED
//               STALL_TIMEOUT RESET_CYCLES [WAVES]
// STIM: uint32 words [N][B_IN][WORDS_IN] (each beat's tdata, little-endian: payload bit k at
// word k/32, bit k%32). BP_THRESHOLD: m_axis_tready is low in a cycle when a 32-bit xorshift64*
// draw is below it (0: never). Cycle 0 is the first rising edge after reset; a beat's cycle is
// the edge at which tvalid & tready were sampled high.
//
// RESULT (little-endian): int64 header[16] (see Header), int64 first_in[N] (cycle of each
// inference's first input beat, -1 if never), int64 last_out[N] (cycle of its last output beat,
// -1 if never), uint32 outputs [N][B_OUT][WORDS_OUT], uint32 probe_valid[PROBE_WORDS] and
// probe_ready[PROBE_WORDS] as sampled at the last edge.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "verilated.h"
#include "rtlsim_config.h"
#include "Vhetero_rtlsim_tb.h"
#include "Vhetero_rtlsim_tb__Dpi.h"
#ifdef RTLSIM_TRACE
#include "verilated_fst_c.h"
#endif

namespace {

enum Status : int64_t { RUNNING = -1, OK = 0, STALL = 1, BAD_TLAST = 2, EARLY_OUTPUT = 3 };

enum Header : int {
    H_MAGIC, H_STATUS, H_TOTAL_CYCLES, H_IN_BEATS, H_OUT_BEATS, H_EVENT_CYCLE,
    H_S_VALID, H_S_READY, H_M_VALID, H_M_READY, H_PROBE_WORDS, H_LAST_MOVE, H_SIZE = 16
};
constexpr int64_t MAGIC = 0x4852544c53494d31;  // "HRTLSIM1"

struct XorShift {  // xorshift64*: cheap, seeded, reproducible across platforms
    uint64_t s = 1;
    void seed(uint64_t seed) {
        s = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
        if (!s) s = 1;
    }
    uint32_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return static_cast<uint32_t>((s * 0x2545F4914F6CDD1DULL) >> 32);
    }
};

// Everything the edge callback needs: set up by main(), read back by main().
struct Run {
    uint64_t n = 0, b_in = 1, b_out = 1, words_in = 1, words_out = 1, probe_words = 1;
    uint64_t bp_threshold = 0, stall_timeout = 1, reset_cycles = 4;
    std::vector<uint32_t> stim, out, probe_valid, probe_ready;
    std::vector<int64_t> first_in, last_out;
    XorShift rng;
    uint64_t edges = 0, in_beat = 0, out_beat = 0, last_move = 0;
    int64_t cycle = -1, event_cycle = -1;
    bool s_valid = false, m_ready = false, s_ready_seen = false, m_valid_seen = false;
    int64_t status = RUNNING;
};
Run run;

void drive(svBit* rst_n, svBit* s_valid_n, svBit* s_last_n, svBitVecVal* s_data_n,
           svBit* m_ready_n, bool in_reset) {
    *rst_n = in_reset;
    run.s_valid = !in_reset && run.in_beat < run.n * run.b_in;
    *s_valid_n = run.s_valid;
    if (run.s_valid) {
        std::memcpy(s_data_n, &run.stim[run.in_beat * run.words_in],
                    run.words_in * sizeof(uint32_t));
        *s_last_n = (run.in_beat % run.b_in) == run.b_in - 1;
    } else {
        std::memset(s_data_n, 0, run.words_in * sizeof(uint32_t));
        *s_last_n = 0;
    }
    run.m_ready = !in_reset && (run.bp_threshold == 0 || run.rng.next() >= run.bp_threshold);
    *m_ready_n = run.m_ready;
}

int fail(const char* what, const char* path) {
    std::fprintf(stderr, "rtlsim: %s %s\n", what, path);
    return 2;
}

}  // namespace

extern "C" void rtlsim_edge(svBit s_ready, svBit m_valid, svBit m_last,
                            const svBitVecVal* m_data, const svBitVecVal* probe_valid,
                            const svBitVecVal* probe_ready, svBit* rst_n, svBit* s_valid_n,
                            svBit* s_last_n, svBitVecVal* s_data_n, svBit* m_ready_n) {
    const uint64_t edge = run.edges++;
    if (edge + 1 < run.reset_cycles) {  // reset edges: keep rst high, offer nothing
        drive(rst_n, s_valid_n, s_last_n, s_data_n, m_ready_n, true);
        return;
    }
    if (edge + 1 == run.reset_cycles) {  // last reset edge: drive cycle 0's inputs
        drive(rst_n, s_valid_n, s_last_n, s_data_n, m_ready_n, false);
        return;
    }
    const int64_t cycle = ++run.cycle;
    run.s_ready_seen = s_ready;
    run.m_valid_seen = m_valid;
    std::memcpy(run.probe_valid.data(), probe_valid, run.probe_words * sizeof(uint32_t));
    std::memcpy(run.probe_ready.data(), probe_ready, run.probe_words * sizeof(uint32_t));
    const bool s_fire = run.s_valid && s_ready;
    if (s_fire) {
        if (run.in_beat % run.b_in == 0) run.first_in[run.in_beat / run.b_in] = cycle;
        ++run.in_beat;
    }
    if (run.m_ready && m_valid) {
        const uint64_t inf = run.out_beat / run.b_out;
        const bool want_last = (run.out_beat % run.b_out) == run.b_out - 1;
        if (inf >= (run.in_beat + run.b_in - 1) / run.b_in) {
            run.status = EARLY_OUTPUT;
        } else if (static_cast<bool>(m_last) != want_last) {
            run.status = BAD_TLAST;
        }
        if (run.status != RUNNING) {
            run.event_cycle = cycle;
            Verilated::gotFinish(true);
            return;
        }
        std::memcpy(&run.out[run.out_beat * run.words_out], m_data,
                    run.words_out * sizeof(uint32_t));
        if (want_last) run.last_out[inf] = cycle;
        if (++run.out_beat == run.n * run.b_out) {
            run.status = OK;
            Verilated::gotFinish(true);
            return;
        }
    }
    if (s_fire || m_valid) run.last_move = cycle;  // held only by our own backpressure: moving
    if (static_cast<uint64_t>(cycle) - run.last_move >= run.stall_timeout) {
        run.status = STALL;
        run.event_cycle = cycle;
        Verilated::gotFinish(true);
        return;
    }
    drive(rst_n, s_valid_n, s_last_n, s_data_n, m_ready_n, false);
}

int main(int argc, char** argv) {
    if (argc < 13) {
        std::fprintf(stderr, "usage: %s STIM RESULT N B_IN B_OUT WORDS_IN WORDS_OUT PROBE_WORDS "
                             "BP_THRESHOLD SEED STALL_TIMEOUT RESET_CYCLES [WAVES]\n", argv[0]);
        return 2;
    }
    auto arg = [&](int i) { return std::strtoull(argv[i], nullptr, 10); };
    run.n = arg(3);
    run.b_in = arg(4);
    run.b_out = arg(5);
    run.words_in = arg(6);
    run.words_out = arg(7);
    run.probe_words = arg(8);
    run.bp_threshold = arg(9);
    run.rng.seed(arg(10));
    run.stall_timeout = arg(11);
    run.reset_cycles = arg(12) < 1 ? 1 : arg(12);
    run.stim.resize(run.n * run.b_in * run.words_in);
    run.out.assign(run.n * run.b_out * run.words_out, 0);
    run.probe_valid.assign(run.probe_words, 0);
    run.probe_ready.assign(run.probe_words, 0);
    run.first_in.assign(run.n, -1);
    run.last_out.assign(run.n, -1);
    {
        FILE* f = std::fopen(argv[1], "rb");
        if (!f) return fail("cannot open", argv[1]);
        const size_t got = std::fread(run.stim.data(), sizeof(uint32_t), run.stim.size(), f);
        std::fclose(f);
        if (got != run.stim.size()) return fail("short stimulus file", argv[1]);
    }

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vhetero_rtlsim_tb>(ctx.get());
#ifdef RTLSIM_TRACE
    Verilated::traceEverOn(true);
    auto tfp = std::make_unique<VerilatedFstC>();
    if (argc > 13) {
        top->trace(tfp.get(), 99);
        tfp->open(argv[13]);
    }
    uint64_t t = 0;
#endif
    top->clk = 0;
    while (run.status == RUNNING) {
        top->clk = 0;
        top->eval();
#ifdef RTLSIM_TRACE
        if (tfp->isOpen()) tfp->dump(t++);
#endif
        top->clk = 1;
        top->eval();
#ifdef RTLSIM_TRACE
        if (tfp->isOpen()) tfp->dump(t++);
#endif
    }
#ifdef RTLSIM_TRACE
    if (tfp->isOpen()) tfp->close();
#endif
    top->final();

    int64_t header[H_SIZE] = {0};
    header[H_MAGIC] = MAGIC;
    header[H_STATUS] = run.status;
    header[H_TOTAL_CYCLES] = run.cycle + 1;
    header[H_IN_BEATS] = static_cast<int64_t>(run.in_beat);
    header[H_OUT_BEATS] = static_cast<int64_t>(run.out_beat);
    header[H_EVENT_CYCLE] = run.event_cycle;
    header[H_S_VALID] = run.s_valid;
    header[H_S_READY] = run.s_ready_seen;
    header[H_M_VALID] = run.m_valid_seen;
    header[H_M_READY] = run.m_ready;
    header[H_PROBE_WORDS] = static_cast<int64_t>(run.probe_words);
    header[H_LAST_MOVE] = static_cast<int64_t>(run.last_move);

    FILE* f = std::fopen(argv[2], "wb");
    if (!f) return fail("cannot write", argv[2]);
    const uint64_t n = run.n, pw = run.probe_words;
    bool ok = std::fwrite(header, sizeof(int64_t), H_SIZE, f) == H_SIZE;
    ok = ok && std::fwrite(run.first_in.data(), sizeof(int64_t), n, f) == n;
    ok = ok && std::fwrite(run.last_out.data(), sizeof(int64_t), n, f) == n;
    ok = ok && std::fwrite(run.out.data(), sizeof(uint32_t), run.out.size(), f) == run.out.size();
    ok = ok && std::fwrite(run.probe_valid.data(), sizeof(uint32_t), pw, f) == pw;
    ok = ok && std::fwrite(run.probe_ready.data(), sizeof(uint32_t), pw, f) == pw;
    ok = (std::fclose(f) == 0) && ok;
    return ok ? 0 : fail("short write to", argv[2]);
}
