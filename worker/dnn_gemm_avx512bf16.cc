// The BF16 training step's GEMM on AVX512_BF16 (worker/CMakeLists.txt gives
// this file -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512bf16 -mfma).
// Reached only through dnn::NativeBf16Gemm after a CPU check.
//
// Both operands are packed to bfloat16 (round to nearest even; exact for
// the bf16 model's operands, which already hold bf16 values) in the layout
// vdpbf16ps reads: pairs of consecutive k. Each instruction multiplies 16
// such pairs and adds both products to 16 fp32 accumulators, so the inner
// loop moves half the bytes of an fp32 GEMM and does twice the work per
// instruction; every sum is fp32.
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512BF16__)
#error "build this file with -mavx512f -mavx512bw -mavx512vl -mavx512bf16"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "worker/dnn_kernels_isa.h"

namespace deepfm {
namespace dnn {
namespace avx512bf16 {
namespace {

constexpr int kMr = 12;  // rows of C per micro-tile: 12 x 2 accumulators
constexpr int kNr = 32;  // columns of C per micro-tile: two zmm

// op(X)[r][c] of a row-major X with leading dimension ld.
inline float At(const float* x, int ld, bool trans, int r, int c) {
  return trans ? x[static_cast<size_t>(c) * ld + r] : x[static_cast<size_t>(r) * ld + c];
}

// Two floats to one 32-bit word of two bf16s (lo = first), round to nearest even.
inline uint32_t PackPair(float lo, float hi) {
  const __m128bh v = _mm_cvtneps_pbh(_mm_set_ps(0.0f, 0.0f, hi, lo));  // bf16 elements lo, hi, 0, 0
  return static_cast<uint32_t>(_mm_cvtsi128_si32(reinterpret_cast<__m128i>(v)));
}

// A panel of kMr rows of op(A) (rows past m are zeros): [kp][row] words,
// each the pair op(A)[row][2kp], op(A)[row][2kp+1].
void PackA(const float* a, int lda, bool trans, int row0, int m, int k, uint32_t* out) {
  const int kp = (k + 1) / 2;
  for (int p = 0; p < kp; ++p) {
    for (int r = 0; r < kMr; ++r) {
      const int row = row0 + r;
      float lo = 0, hi = 0;
      if (row < m) {
        lo = At(a, lda, trans, row, 2 * p);
        if (2 * p + 1 < k) hi = At(a, lda, trans, row, 2 * p + 1);
      }
      out[static_cast<size_t>(p) * kMr + r] = PackPair(lo, hi);
    }
  }
}

// 16-bit element 2j of a word pair vector takes element j, 2j+1 takes 16 + j.
alignas(64) constexpr uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                                  21, 6, 22, 7, 23, 8, 24, 9, 25, 10, 26,
                                                  11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

// A panel of kNr columns of op(B) (columns past n are zeros): [kp][col]
// words, each the pair op(B)[2kp][col], op(B)[2kp+1][col].
void PackB(const float* b, int ldb, bool trans, int col0, int n, int k, uint32_t* out) {
  const int kp = (k + 1) / 2;
  for (int p = 0; p < kp; ++p) {
    uint32_t* dst = out + static_cast<size_t>(p) * kNr;
    const bool full = !trans && col0 + kNr <= n && 2 * p + 1 < k;
    if (full) {
      // Rows 2p and 2p+1 are contiguous runs of 32 floats: convert 16 at a
      // time and interleave them into pairs.
      const float* r0 = b + static_cast<size_t>(2 * p) * ldb + col0;
      const float* r1 = r0 + ldb;
      const __m512i interleave = _mm512_loadu_si512(kInterleave);
      for (int h = 0; h < kNr; h += 16) {
        const __m512 lo = _mm512_loadu_ps(r0 + h), hi = _mm512_loadu_ps(r1 + h);
        // bf16 elements 0-15 from row 2p, 16-31 from row 2p+1; then the
        // word of column j is (row 2p's, row 2p+1's).
        const __m512i both = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512(dst + h, _mm512_permutexvar_epi16(interleave, both));
      }
      continue;
    }
    for (int c = 0; c < kNr; ++c) {
      const int col = col0 + c;
      float lo = 0, hi = 0;
      if (col < n) {
        lo = At(b, ldb, trans, 2 * p, col);
        if (2 * p + 1 < k) hi = At(b, ldb, trans, 2 * p + 1, col);
      }
      dst[c] = PackPair(lo, hi);
    }
  }
}

// C tile [rows x cols] (rows <= kMr, cols <= kNr) = packed A panel times
// packed B panel (+ beta * C).
void MicroTile(const uint32_t* pa, const uint32_t* pb, int kp, float* c, int ldc, int rows,
               int cols, float beta) {
  __m512 acc[kMr][2];
  for (int r = 0; r < kMr; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int p = 0; p < kp; ++p) {
    const __m512bh b0 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(pb + p * kNr));
    const __m512bh b1 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(pb + p * kNr + 16));
    const uint32_t* ap = pa + static_cast<size_t>(p) * kMr;
    for (int r = 0; r < kMr; ++r) {
      const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(ap[r])));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
  }
  const __mmask16 m0 = static_cast<__mmask16>(cols >= 16 ? 0xffff : (1u << cols) - 1);
  const __mmask16 m1 =
      static_cast<__mmask16>(cols >= 32 ? 0xffff : cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
  for (int r = 0; r < rows; ++r) {
    float* row = c + static_cast<size_t>(r) * ldc;
    __m512 v0 = acc[r][0], v1 = acc[r][1];
    if (beta != 0.0f) {
      v0 = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m0, row), v0);
      v1 = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m1, row + 16), v1);
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
}

}  // namespace

void Gemm(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n, int k,
          bool trans_a, bool trans_b, float beta) {
  if (m <= 0 || n <= 0) return;
  const int kp = (k + 1) / 2;
  // Every A panel once (kMr x K bf16 each: the whole of op(A) is a few
  // hundred KiB at batch 512), then one B panel at a time, kept in L1 while
  // every A panel passes over it.
  const int panels_a = (m + kMr - 1) / kMr;
  thread_local std::vector<uint32_t> pack_a, pack_b;
  pack_a.resize(static_cast<size_t>(panels_a) * kp * kMr);
  pack_b.resize(static_cast<size_t>(kp) * kNr);
  for (int i = 0; i < panels_a; ++i) {
    PackA(a, lda, trans_a, i * kMr, m, k, pack_a.data() + static_cast<size_t>(i) * kp * kMr);
  }
  for (int col0 = 0; col0 < n; col0 += kNr) {
    PackB(b, ldb, trans_b, col0, n, k, pack_b.data());
    const int cols = std::min(kNr, n - col0);
    for (int i = 0; i < panels_a; ++i) {
      const int row0 = i * kMr;
      MicroTile(pack_a.data() + static_cast<size_t>(i) * kp * kMr, pack_b.data(), kp,
                c + static_cast<size_t>(row0) * ldc + col0, ldc, std::min(kMr, m - row0), cols,
                beta);
    }
  }
}

}  // namespace avx512bf16
}  // namespace dnn
}  // namespace deepfm
