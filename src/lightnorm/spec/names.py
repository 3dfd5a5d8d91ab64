"""Which spec names are reserved: a spec's name becomes file names and identifiers.

The HLS view writes ``<ident>.h``, ``<ident>.cpp``, ``<ident>_config.h`` and
``tb_<ident>.cpp`` next to lightnorm's own headers (``ln_*.h``), and declares
``<ident>_forward``, ``<ident>_backward``, ``<ident>_config`` and the include guards
``<IDENT>_H`` / ``<IDENT>_CONFIG_H`` (``ident`` = the name with ``-`` as ``_``). A name must not
collide with any of that:

* a generated file of lightnorm's library or a header the generated code, the ap_types headers
  or the C/C++ library include (a ``<ident>.h`` in the include path shadows it: ``stdint``,
  ``math``, ``ap_int``, ``ln_fp``), reserved by name or by prefix (``ln_``, ``ap_``, ``hls_``);
* a keyword of C++, (System)Verilog or DSLX, or an integer type name of DSLX (``u8``, ``s32``),
  should a view ever use the bare identifier;
* an identifier C++ reserves: two ``_`` in a row, which ``a--b`` and a trailing ``-``/``_``
  (``a_`` + ``_forward``) would make.

tests/test_names.py draws names from these lists and checks each is rejected, and compiles a
generated design with ``g++ -M`` to check every header it pulls from an include root is here.
"""

from __future__ import annotations

import re

#: prefixes of names that belong to libraries: lightnorm's C++ headers (ln_*.h) and namespace,
#: the Xilinx ap_types / Vitis HLS headers (ap_*.h, hls_*.h, x_hls_*.h and their guards)
RESERVED_PREFIXES = ("ln_", "ap_", "hls_", "x_hls_")

CPP_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
extern false float for friend goto if inline int long mutable namespace new noexcept not not_eq
nullptr operator or or_eq private protected public register reinterpret_cast requires restrict
return short signed sizeof static static_assert static_cast struct switch template this
thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while xor xor_eq final override import module main std ln
""".split())

VERILOG_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic
before begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle
checker class clocking cmos config const constraint context continue cover covergroup
coverpoint cross deassign default defparam design disable dist do edge else end endcase
endchecker endclass endclocking endconfig endfunction endgenerate endgroup endinterface
endmodule endpackage endprimitive endprogram endproperty endspecify endsequence endtable endtask
enum event eventually expect export extends extern final first_match for force foreach forever
fork forkjoin function generate genvar global highz0 highz1 if iff ifnone ignore_bins
illegal_bins implements implies import incdir include initial inout input inside instance int
integer interconnect interface intersect join join_any join_none large let liblist library local
localparam logic longint macromodule matches medium modport module nand negedge nettype new
nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed parameter pmos
posedge primitive priority program property protected pull0 pull1 pulldown pullup
pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real realtime
ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1 s_always
s_eventually s_nexttime s_until s_until_with scalared sequence shortint shortreal showcancelled
signed small soft solve specify specparam static string strong strong0 strong1 struct super
supply0 supply1 sync_accept_on sync_reject_on table tagged task this throughout time
timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type typedef union
unique unique0 unsigned until until_with untyped use uwire var vectored virtual void wait
wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""".split())

DSLX_KEYWORDS = frozenset("""
as bits bool chan const else enum false fn for if impl import in init let match mut next proc
pub self spawn struct token trait true type unroll_for use
""".split())

#: headers found by name in an include root (``#include <X.h>`` or ``"X.h"``): the C standard
#: library, POSIX, what glibc's and GCC's roots add, and lightnorm's own library files
HEADER_STEMS = frozenset("""
assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign
stdarg stdatomic stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath
threads time uchar wchar wctype
aio cpio dirent dlfcn fcntl fmtmsg fnmatch ftw glob grp iconv langinfo libgen monetary mqueue
ndbm netdb nl_types poll pthread pwd regex sched search semaphore spawn strings stropts syslog
tar termios trace ulimit unistd utime utmp utmpx wordexp
alloca argp argz byteswap crypt elf endian envz err error execinfo features fstab fts getopt
gshadow ifaddrs libintl link malloc memory mcheck mntent obstack paths printf resolv sgtty
shadow stab sysexits syscall termio thread_db ttyent values xlocale varargs
cpuid immintrin mm_malloc quadmath unwind omp
ln_ap ln_fp ln_bfp ln_bn
""".split())

_DSLX_INT = re.compile(r"[us][0-9]+")


def reserved_reason(name: str) -> str | None:
    """Why ``name`` (already of the allowed characters) cannot name a spec, or None."""
    ident = name.replace("-", "_")
    if ident.endswith("_"):
        return "a name that does not end with '-' or '_' (the generated C++ identifiers would " \
               "hold '__', which C++ reserves)"
    if "__" in ident:
        return "a name without two separators in a row (the generated C++ identifiers would " \
               "hold '__', which C++ reserves)"
    for prefix in RESERVED_PREFIXES:
        if ident.startswith(prefix) or ident == prefix[:-1]:
            return (f"a name that does not start with {prefix!r} or {prefix[:-1] + '-'!r} "
                    "(reserved for the headers of lightnorm's C++ library, ap_types and "
                    "Vitis HLS)")
    if ident in HEADER_STEMS:
        return (f"a name other than {name!r}: {ident}.h is a header of lightnorm's library or "
                "of the C/C++ library, and the generated header would shadow it")
    for words, lang in ((CPP_KEYWORDS, "C++"), (VERILOG_KEYWORDS, "Verilog"),
                        (DSLX_KEYWORDS, "DSLX")):
        if ident in words:
            return f"a name other than {name!r}: it is a {lang} keyword or reserved identifier"
    if _DSLX_INT.fullmatch(ident):
        return f"a name other than {name!r}: it is a DSLX integer type"
    return None


def reserved_words() -> frozenset[str]:
    """Every reserved identifier (for tests and docs)."""
    return CPP_KEYWORDS | VERILOG_KEYWORDS | DSLX_KEYWORDS | HEADER_STEMS
