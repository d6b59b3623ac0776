// The int8 GRU's fp16 cell as one op, for the int8 stepper (see native.py): the same arithmetic
// as stepper.fp16_cell on fbgemm's quint8 gate outputs, bit for bit, without its dozen torch
// calls per layer and step.
//
//   gx, gh  = the gates dequantized, rounded to fp16          [B, 3H] each, gates r, z, n
//   r, z    = sigmoid(gx + gh), rounded to fp16               (first and second H columns)
//   n       = tanh(gx_n + r * gh_n), rounded to fp16
//   h'      = n + z * (h - n)                                  every + - * rounded to fp16
//
// Every fp16 operation is the float32 operation rounded to nearest even, as torch's CPU kernels
// compute half. Dequantization is torch's (q - zero point) * float scale. sigmoid is torch's
// AVX512 float kernel, 1 / (1 + exp(0 - x)) with Sleef's expf16_u10 (exported by libtorch_cpu),
// so this file is built only for torch's AVX512 capability. tanh, whose Sleef function costs
// half the cell, is a table of torch's own fp16 results (native.tanh_table).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <immintrin.h>
#include <sleef.h>
#include <torch/library.h>

#include <cstdint>

namespace {

constexpr int64_t kRowsPerTask = 16;  // below this, a thread costs more than it saves
constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
constexpr int32_t kOne = 0x3C00, kInfinity = 0x7C00;  // fp16 bits

inline __m512 fp16(__m512 v) { return _mm512_cvtph_ps(_mm512_cvtps_ph(v, kNearest)); }

inline __m512 sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = Sleef_expf16_u10(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

// tanh of fp16 values, rounded to fp16, from torch's own results (see native.tanh_table): odd;
// x itself below magnitude bits `from`, a table up to `from + size`, 1 from there to infinity,
// and NaN stays NaN.
struct Tanh {
  const int16_t* table;  // fp16 bits of tanh for magnitudes from, from + 1, ...; one more to pad
  __m512i from, last;

  Tanh(const at::Tensor& table, int64_t from)
      : table(table.const_data_ptr<int16_t>()),
        from(_mm512_set1_epi32(static_cast<int32_t>(from))),
        last(_mm512_set1_epi32(static_cast<int32_t>(table.numel() - 2))) {}

  __m512 operator()(__m512 x) const {
    const __m512i bits = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(x, kNearest));
    const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFF));
    const __m512i index = _mm512_sub_epi32(magnitude, from);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(magnitude, _mm512_set1_epi32(kInfinity));
    const __mmask16 below = _mm512_cmplt_epi32_mask(index, _mm512_setzero_si512());
    const __mmask16 above = _mm512_cmpgt_epi32_mask(index, last);
    const __mmask16 inside = static_cast<__mmask16>(~(below | above));
    // Two bytes a step, four read: the low two are the entry (the table has one to pad).
    __m512i y = _mm512_mask_i32gather_epi32(_mm512_set1_epi32(kOne), inside, index, table, 2);
    y = _mm512_and_si512(y, _mm512_set1_epi32(0xFFFF));
    y = _mm512_mask_mov_epi32(y, below | nan, magnitude);
    y = _mm512_or_si512(y, _mm512_andnot_si512(_mm512_set1_epi32(0x7FFF), bits));  // the sign
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(y));
  }
};

// A quint8 [B, 3H] gate tensor, read 16 columns of a row at a time.
struct Gates {
  const uint8_t* codes;
  int64_t row_size;
  __m512i zero_point;
  __m512 scale;

  explicit Gates(const at::Tensor& gates)
      : codes(static_cast<const uint8_t*>(gates.const_data_ptr())),
        row_size(gates.size(1)),
        zero_point(_mm512_set1_epi32(static_cast<int32_t>(gates.q_zero_point()))),
        scale(_mm512_set1_ps(static_cast<float>(gates.q_scale()))) {}

  __m512 fp16_at(int64_t row, int64_t column, __mmask16 mask) const {
    const __m128i bytes = _mm_maskz_loadu_epi8(mask, codes + row * row_size + column);
    const __m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(bytes), zero_point);
    return fp16(_mm512_mul_ps(_mm512_cvtepi32_ps(q), scale));
  }
};

void check(bool ok, const char* what) { TORCH_CHECK(ok, "amadeus::gru_cell_fp16: ", what); }

bool contiguous_cpu(const at::Tensor& t, at::ScalarType type) {
  return t.device().is_cpu() && t.scalar_type() == type && t.dim() == 2 && t.is_contiguous();
}

// gates_x, gates_h: quint8 [B, 3H]; h, out: float [B, H]; all contiguous, on the CPU.
void gru_cell_fp16(const at::Tensor& gates_x, const at::Tensor& gates_h, const at::Tensor& h,
                   const at::Tensor& tanh_table, int64_t tanh_from, at::Tensor& out) {
  check(contiguous_cpu(h, at::kFloat) && contiguous_cpu(out, at::kFloat) &&
            out.sizes() == h.sizes(), "h and out must be contiguous float [B, H] on the CPU");
  const int64_t batch = h.size(0), size = h.size(1);
  for (const at::Tensor* gates : {&gates_x, &gates_h}) {
    check(contiguous_cpu(*gates, at::kQUInt8) && gates->size(0) == batch &&
              gates->size(1) == 3 * size, "gates must be contiguous quint8 [B, 3H] on the CPU");
  }
  check(tanh_table.device().is_cpu() && tanh_table.scalar_type() == at::kShort &&
            tanh_table.dim() == 1 && tanh_table.is_contiguous() && tanh_table.numel() >= 2 &&
            tanh_from >= 0 && tanh_from <= kInfinity,
        "tanh_table must be int16 [N >= 2], tanh_from fp16 magnitude bits");
  const Gates x(gates_x), y(gates_h);
  const Tanh tanh(tanh_table, tanh_from);
  const float* h_data = h.const_data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  // Rows are independent: a large batch splits across torch's threads.
  at::parallel_for(0, batch, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const float* h_row = h_data + b * size;
      float* out_row = out_data + b * size;
      for (int64_t j = 0; j < size; j += 16) {
        const __mmask16 mask = size - j >= 16 ? 0xFFFF : (1u << (size - j)) - 1;
        const __m512 r =
            fp16(sigmoid(fp16(_mm512_add_ps(x.fp16_at(b, j, mask), y.fp16_at(b, j, mask)))));
        const __m512 z = fp16(sigmoid(
            fp16(_mm512_add_ps(x.fp16_at(b, size + j, mask), y.fp16_at(b, size + j, mask)))));
        const __m512 gated = fp16(_mm512_mul_ps(r, y.fp16_at(b, 2 * size + j, mask)));
        const __m512 n = tanh(fp16(_mm512_add_ps(x.fp16_at(b, 2 * size + j, mask), gated)));
        const __m512 h_old = fp16(_mm512_maskz_loadu_ps(mask, h_row + j));
        const __m512 keep = fp16(_mm512_mul_ps(z, fp16(_mm512_sub_ps(h_old, n))));
        _mm512_mask_storeu_ps(out_row + j, mask, fp16(_mm512_add_ps(n, keep)));
      }
    }
  });
}

}  // namespace

TORCH_LIBRARY(amadeus, m) {
  m.def(
      "gru_cell_fp16(Tensor gates_x, Tensor gates_h, Tensor h, Tensor tanh_table, int tanh_from, "
      "Tensor(a!) out) -> ()");
  m.impl("gru_cell_fp16", c10::DispatchKey::QuantizedCPU, &gru_cell_fp16);
}
