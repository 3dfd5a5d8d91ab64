"""The Verilator C++ driver of the activity simulation (``lightnorm_tb`` with ``--trace``).

It does what the cocotb test of the co-simulation does (lightnorm.verify.cocotb_tb), without
cocotb: reset, then for each run of the job file: chdir into the run's directory (where
``lightnorm.verify.cosim.prepare_runs`` wrote ``x.hex``, ``dy.hex``, ``pc.hex``), drive the
configuration, pulse ``load`` and ``go``, and clock until ``finished``, dumping a VCD of the
design under test (``lightnorm_tb.u_dut`` only) once per clock cycle, after the rising edge.
Each run gets its own VCD, which covers exactly the cycles of that run (from the cycle after
``go`` to the cycle ``finished`` rises). It prints one line per run:
``run <index> cycles <busy cycles> window <dumped cycles> finished <0|1>``.

Job file, one run per line (numbers in decimal):
``dir mode channels n beats inv_n c_k eps momentum unbias max_cycles vcd_path``.
"""

HARNESS_CPP = r"""// lightnorm activity harness: drives lightnorm_tb, one VCD of u_dut per run.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <unistd.h>
#include "verilated.h"
#include "verilated_vcd_c.h"
#include "Vlightnorm_tb.h"

struct Run {
    std::string dir, vcd;
    uint64_t mode, channels, n, beats, inv_n, c_k, eps, momentum, unbias, max_cycles;
};

static uint64_t g_time = 0;

static void tick(Vlightnorm_tb* t, VerilatedVcdC* tf) {
    t->clk = 1;
    t->eval();
    t->clk = 0;
    t->eval();
    if (tf) tf->dump(g_time);
    ++g_time;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s JOBFILE\n", argv[0]);
        return 2;
    }
    std::ifstream jf(argv[1]);
    if (!jf) {
        std::perror(argv[1]);
        return 2;
    }
    std::vector<Run> runs;
    std::string line;
    while (std::getline(jf, line)) {
        if (line.empty()) continue;
        std::istringstream is(line);
        Run r;
        is >> r.dir >> r.mode >> r.channels >> r.n >> r.beats >> r.inv_n >> r.c_k >> r.eps
           >> r.momentum >> r.unbias >> r.max_cycles >> r.vcd;
        if (!is) {
            std::fprintf(stderr, "bad job line: %s\n", line.c_str());
            return 2;
        }
        runs.push_back(r);
    }
    VerilatedContext* ctx = new VerilatedContext;
    ctx->traceEverOn(true);
    Vlightnorm_tb* t = new Vlightnorm_tb(ctx);
    VerilatedVcdC* tf = new VerilatedVcdC;
    tf->dumpvars(1000000, "TOP.lightnorm_tb.u_dut");
    t->trace(tf, 99);
    t->clk = 0;
    t->rst = 1;
    t->load = 0;
    t->dump = 0;
    t->go = 0;
    t->idle_thr = 0;  // no idle cycles on the sources
    t->bp_thr = 0;    // no back-pressure on the sinks
    t->seed = 1;
    for (int i = 0; i < 3; ++i) tick(t, nullptr);
    t->rst = 0;
    tick(t, nullptr);
    for (size_t k = 0; k < runs.size(); ++k) {
        const Run& r = runs[k];
        if (chdir(r.dir.c_str()) != 0) {
            std::perror(r.dir.c_str());
            return 2;
        }
        t->mode = r.mode;
        t->channels = r.channels;
        t->n = r.n;
        t->beats = r.beats;
        t->inv_n = r.inv_n;
        t->c_k = r.c_k;
        t->eps = r.eps;
        t->momentum = r.momentum;
        t->unbias = r.unbias;
        t->load = 1;
        tick(t, nullptr);
        t->load = 0;
        tick(t, nullptr);
        tf->open(r.vcd.c_str());
        t->go = 1;
        tick(t, nullptr);
        t->go = 0;
        uint64_t window = 0;
        bool finished = false;
        while (window < r.max_cycles) {
            tick(t, tf);
            ++window;
            if (t->finished) {
                finished = true;
                break;
            }
        }
        tf->close();
        std::printf("run %zu cycles %llu window %llu finished %d\n", k,
                    (unsigned long long)t->cycles, (unsigned long long)window, finished ? 1 : 0);
        std::fflush(stdout);
        if (!finished) return 1;
        tick(t, nullptr);
    }
    t->final();
    delete tf;
    delete t;
    delete ctx;
    return 0;
}
"""
