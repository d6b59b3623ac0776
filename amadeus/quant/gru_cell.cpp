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

inline __m512 fp16(__m512 v) { return _mm512_cvtph_ps(_mm512_cvtps_ph(v, kNearest)); }

inline __m512 sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = Sleef_expf16_u10(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

// tanh of fp16 values, rounded to fp16, from torch's own results (see native.tanh_table): odd;
// x itself below magnitude bits `from`, a table up to `from + size`, and 1 from there on.
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
    const __mmask16 below = _mm512_cmplt_epi32_mask(index, _mm512_setzero_si512());
    const __mmask16 above = _mm512_cmpgt_epi32_mask(index, last);
    const __mmask16 inside = static_cast<__mmask16>(~(below | above));
    // Two bytes a step, four read: the low two are the entry (the table has one to pad).
    __m512i y = _mm512_mask_i32gather_epi32(_mm512_set1_epi32(0x3C00), inside, index, table, 2);
    y = _mm512_mask_mov_epi32(_mm512_and_si512(y, _mm512_set1_epi32(0xFFFF)), below, magnitude);
    y = _mm512_or_si512(y, _mm512_andnot_si512(_mm512_set1_epi32(0x7FFF), bits));  // the sign
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(y));
  }
};

// A quint8 [B, 3H] gate tensor, read 16 columns of a row at a time.
struct Gates {
  const uint8_t* codes;
  int64_t row_stride;
  __m512i zero_point;
  __m512 scale;

  explicit Gates(const at::Tensor& gates)
      : codes(static_cast<const uint8_t*>(gates.const_data_ptr())),
        row_stride(gates.stride(0)),
        zero_point(_mm512_set1_epi32(static_cast<int32_t>(gates.q_zero_point()))),
        scale(_mm512_set1_ps(static_cast<float>(gates.q_scale()))) {}

  __m512 fp16_at(int64_t row, int64_t column, __mmask16 mask) const {
    const __m128i bytes = _mm_maskz_loadu_epi8(mask, codes + row * row_stride + column);
    const __m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(bytes), zero_point);
    return fp16(_mm512_mul_ps(_mm512_cvtepi32_ps(q), scale));
  }
};

void check(bool ok, const char* what) { TORCH_CHECK(ok, "amadeus::gru_cell_fp16: ", what); }

// gates_x, gates_h: quint8 [B, 3H], rows contiguous; h, out: float [B, H], rows contiguous.
void gru_cell_fp16(const at::Tensor& gates_x, const at::Tensor& gates_h, const at::Tensor& h,
                   const at::Tensor& tanh_table, int64_t tanh_from, at::Tensor& out) {
  const int64_t batch = h.size(0), size = h.size(1);
  for (const at::Tensor* gates : {&gates_x, &gates_h}) {
    check(gates->scalar_type() == at::kQUInt8 && gates->dim() == 2, "gates must be quint8 2-d");
    check(gates->size(0) == batch && gates->size(1) == 3 * size, "gates must be [B, 3H]");
    check(gates->stride(1) == 1, "gate rows must be contiguous");
  }
  for (const at::Tensor* t : {&h, static_cast<const at::Tensor*>(&out)}) {
    check(t->scalar_type() == at::kFloat && t->dim() == 2, "h and out must be float 2-d");
    check(t->size(0) == batch && t->size(1) == size && t->stride(1) == 1, "h and out: [B, H]");
  }
  check(tanh_table.scalar_type() == at::kShort && tanh_table.is_contiguous() &&
            tanh_table.numel() >= 2, "tanh_table must be int16, contiguous, at least 2");
  const Gates x(gates_x), y(gates_h);
  const Tanh tanh(tanh_table, tanh_from);
  const float* h_data = h.const_data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  const int64_t h_stride = h.stride(0), out_stride = out.stride(0);
  // Rows are independent: a large batch splits across torch's threads.
  at::parallel_for(0, batch, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const float* h_row = h_data + b * h_stride;
      float* out_row = out_data + b * out_stride;
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
