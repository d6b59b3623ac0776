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
// compute half. Dequantization is torch's (q - zero point) * float scale. sigmoid and tanh are
// torch's AVX512 float kernels: Sleef's expf16_u10 and tanhf16_u10, exported by libtorch_cpu,
// sigmoid as 1 / (1 + exp(0 - x)). So this file is built only for torch's AVX512 capability.
#include <ATen/core/Tensor.h>
#include <immintrin.h>
#include <sleef.h>
#include <torch/library.h>

#include <cstdint>

namespace {

constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

inline __m512 fp16(__m512 v) { return _mm512_cvtph_ps(_mm512_cvtps_ph(v, kNearest)); }

inline __m512 sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = Sleef_expf16_u10(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

// One row of a quint8 [B, 3H] gate tensor, read 16 columns at a time.
struct GateRow {
  const uint8_t* codes;
  __m512i zero_point;
  __m512 scale;

  GateRow(const at::Tensor& gates, int64_t row)
      : codes(static_cast<const uint8_t*>(gates.const_data_ptr()) + row * gates.stride(0)),
        zero_point(_mm512_set1_epi32(static_cast<int32_t>(gates.q_zero_point()))),
        scale(_mm512_set1_ps(static_cast<float>(gates.q_scale()))) {}

  __m512 fp16_at(int64_t column, __mmask16 mask) const {
    const __m512i q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, codes + column));
    return fp16(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, zero_point)), scale));
  }
};

void check(bool ok, const char* what) { TORCH_CHECK(ok, "amadeus::gru_cell_fp16: ", what); }

// gates_x, gates_h: quint8 [B, 3H], rows contiguous; h, out: float [B, H], rows contiguous.
void gru_cell_fp16(const at::Tensor& gates_x, const at::Tensor& gates_h, const at::Tensor& h,
                   at::Tensor& out) {
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
  const float* h_data = h.const_data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  for (int64_t b = 0; b < batch; ++b) {
    const GateRow x(gates_x, b), y(gates_h, b);
    const float* h_row = h_data + b * h.stride(0);
    float* out_row = out_data + b * out.stride(0);
    for (int64_t j = 0; j < size; j += 16) {
      const __mmask16 mask = size - j >= 16 ? 0xFFFF : (1u << (size - j)) - 1;
      const __m512 r = fp16(sigmoid(fp16(_mm512_add_ps(x.fp16_at(j, mask), y.fp16_at(j, mask)))));
      const __m512 z = fp16(sigmoid(
          fp16(_mm512_add_ps(x.fp16_at(size + j, mask), y.fp16_at(size + j, mask)))));
      const __m512 gated = fp16(_mm512_mul_ps(r, y.fp16_at(2 * size + j, mask)));
      const __m512 n =
          fp16(Sleef_tanhf16_u10(fp16(_mm512_add_ps(x.fp16_at(2 * size + j, mask), gated))));
      const __m512 h_old = fp16(_mm512_maskz_loadu_ps(mask, h_row + j));
      const __m512 keep = fp16(_mm512_mul_ps(z, fp16(_mm512_sub_ps(h_old, n))));
      _mm512_mask_storeu_ps(out_row + j, mask, fp16(_mm512_add_ps(n, keep)));
    }
  }
}

}  // namespace

TORCH_LIBRARY(amadeus, m) {
  m.def("gru_cell_fp16(Tensor gates_x, Tensor gates_h, Tensor h, Tensor(a!) out) -> ()");
  m.impl("gru_cell_fp16", c10::DispatchKey::QuantizedCPU, &gru_cell_fp16);
}
