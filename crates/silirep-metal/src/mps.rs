//! Metal Performance Shaders matrix kernels: GEMM (MPSMatrixMultiplication) and GEMV
//! (MPSMatrixVectorMultiplication) over views into this backend's buffers.

use super::gpu::{Buffer, Gpu, backend_error};
use super::program::{CommandBuffer, Step};
use crate::numeric;
use objc2::rc::Retained;
use objc2::{AnyThread, ClassType, sel};
use objc2_metal::MTLBuffer;
use objc2_metal_performance_shaders::{
    MPSDataType, MPSMatrix, MPSMatrixDescriptor, MPSMatrixMultiplication,
    MPSMatrixVectorMultiplication, MPSVector, MPSVectorDescriptor,
};
use silirep_core::{Dtype, KernelError};

impl Gpu {
    /// A GEMM through MPSMatrixMultiplication:
    /// `result = alpha · op(left) · op(right) + beta · result`.
    pub fn matmul(
        &self,
        left: &MatrixView,
        right: &MatrixView,
        result: &MatrixView,
        options: GemmOptions,
    ) -> Result<Step, KernelError> {
        let interior = if options.transpose_left {
            left.rows
        } else {
            left.columns
        };
        // SAFETY: the views were checked against their buffers' lengths (MatrixView::matrix),
        // and the Step keeps the MPSMatrix objects, which retain the buffers, alive.
        let kernel = unsafe {
            MPSMatrixMultiplication::initWithDevice_transposeLeft_transposeRight_resultRows_resultColumns_interiorColumns_alpha_beta(
                MPSMatrixMultiplication::alloc(),
                &self.device,
                options.transpose_left,
                options.transpose_right,
                result.rows,
                result.columns,
                interior,
                options.alpha,
                options.beta,
            )
        };
        Ok(Step::Gemm(MatMul {
            kernel,
            left: left.matrix()?,
            right: right.matrix()?,
            result: result.matrix()?,
        }))
    }

    /// A matrix-vector product through MPSMatrixVectorMultiplication: `output = matrix ·
    /// input`, with the matrix stored `[out][in]` (a weight, as for the GEMMs).
    pub fn matvec(
        &self,
        matrix: &MatrixView,
        input: &VectorView,
        output: &VectorView,
    ) -> Result<Step, KernelError> {
        // SAFETY: as for matmul; the vectors' buffers are checked in VectorView::vector.
        let kernel = unsafe {
            MPSMatrixVectorMultiplication::initWithDevice_rows_columns(
                MPSMatrixVectorMultiplication::alloc(),
                &self.device,
                matrix.rows,
                matrix.columns,
            )
        };
        Ok(Step::Gemv(MatVec {
            kernel,
            matrix: matrix.matrix()?,
            input: input.vector()?,
            output: output.vector()?,
        }))
    }
}

/// Transposes and scaling of one MPS GEMM.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GemmOptions {
    pub transpose_left: bool,
    pub transpose_right: bool,
    pub alpha: f64,
    /// 1 accumulates into the result (gradients summed over the heads of a K/V group).
    pub beta: f64,
}

impl GemmOptions {
    pub const PLAIN: GemmOptions = GemmOptions {
        transpose_left: false,
        transpose_right: false,
        alpha: 1.0,
        beta: 0.0,
    };
    /// `left · rightᵀ`: weights stored `[out][in]`, as PyTorch does.
    pub const RIGHT_TRANSPOSED: GemmOptions = GemmOptions {
        transpose_right: true,
        ..GemmOptions::PLAIN
    };
    /// `leftᵀ · right`: weight gradients, summed over tokens.
    pub const LEFT_TRANSPOSED: GemmOptions = GemmOptions {
        transpose_left: true,
        ..GemmOptions::PLAIN
    };

    pub fn alpha(self, alpha: f64) -> GemmOptions {
        GemmOptions { alpha, ..self }
    }

    pub fn accumulate(self, accumulate: bool) -> GemmOptions {
        GemmOptions {
            beta: if accumulate { 1.0 } else { 0.0 },
            ..self
        }
    }
}

pub(crate) struct MatVec {
    kernel: Retained<MPSMatrixVectorMultiplication>,
    matrix: Retained<MPSMatrix>,
    input: Retained<MPSVector>,
    output: Retained<MPSVector>,
}

impl MatVec {
    pub(super) fn encode(&self, command_buffer: &CommandBuffer) {
        // SAFETY: the buffers are retained by the MPSMatrix/MPSVector objects held here, and
        // their sizes were checked when the views were made.
        unsafe {
            self.kernel
                .encodeToCommandBuffer_inputMatrix_inputVector_resultVector(
                    command_buffer,
                    &self.matrix,
                    &self.input,
                    &self.output,
                );
        }
    }
}

pub(crate) struct MatMul {
    kernel: Retained<MPSMatrixMultiplication>,
    left: Retained<MPSMatrix>,
    right: Retained<MPSMatrix>,
    result: Retained<MPSMatrix>,
}

impl MatMul {
    pub(super) fn encode(&self, command_buffer: &CommandBuffer) {
        // SAFETY: the buffers are retained by the MPSMatrix objects held here, and their
        // sizes were checked when the views were made.
        unsafe {
            self.kernel
                .encodeToCommandBuffer_leftMatrix_rightMatrix_resultMatrix(
                    command_buffer,
                    &self.left,
                    &self.right,
                    &self.result,
                );
        }
    }
}

/// A matrix (or a batch of equally shaped matrices) inside a buffer.
#[derive(Clone)]
pub(crate) struct MatrixView {
    pub buffer: Buffer,
    pub offset_bytes: usize,
    pub rows: usize,
    pub columns: usize,
    pub row_bytes: usize,
    pub matrices: usize,
    pub matrix_bytes: usize,
    pub dtype: Dtype,
}

impl MatrixView {
    /// A dense row-major `rows × columns` matrix at the start of `buffer`.
    pub fn dense(buffer: &Buffer, rows: usize, columns: usize, dtype: Dtype) -> MatrixView {
        let row_bytes = columns * numeric::element_bytes(dtype);
        MatrixView {
            buffer: buffer.clone(),
            offset_bytes: 0,
            rows,
            columns,
            row_bytes,
            matrices: 1,
            matrix_bytes: rows * row_bytes,
            dtype,
        }
    }

    /// `matrices` dense `rows × columns` matrices stored back to back.
    pub fn batched(
        buffer: &Buffer,
        matrices: usize,
        rows: usize,
        columns: usize,
        dtype: Dtype,
    ) -> MatrixView {
        MatrixView {
            matrices,
            ..MatrixView::dense(buffer, rows, columns, dtype)
        }
    }

    /// The first `columns` columns of each row, starting `column_offset` columns in (a slice
    /// of a wider matrix, e.g. the Q part of a fused QKV projection).
    pub fn columns(&self, column_offset: usize, columns: usize) -> MatrixView {
        MatrixView {
            offset_bytes: self.offset_bytes + column_offset * numeric::element_bytes(self.dtype),
            columns,
            ..self.clone()
        }
    }

    /// Row `row` of this (single) matrix as a vector.
    pub fn row_vector(&self, row: usize) -> VectorView {
        VectorView {
            buffer: self.buffer.clone(),
            offset_bytes: self.offset_bytes + row * self.row_bytes,
            length: self.columns,
            dtype: self.dtype,
        }
    }

    fn matrix(&self) -> Result<Retained<MPSMatrix>, KernelError> {
        let element = numeric::element_bytes(self.dtype);
        let needed = self.offset_bytes
            + (self.matrices - 1) * self.matrix_bytes
            + (self.rows - 1) * self.row_bytes
            + self.columns * element;
        if needed > self.buffer.length() {
            return Err(backend_error(
                "matrix view exceeds its buffer",
                format!("{needed} > {} bytes", self.buffer.length()),
            ));
        }
        let data_type = mps_data_type(self.dtype)?;
        // SAFETY: plain constructors; the buffer is large enough (checked above) and is
        // retained by the MPSMatrix.
        unsafe {
            let descriptor =
                MPSMatrixDescriptor::matrixDescriptorWithRows_columns_matrices_rowBytes_matrixBytes_dataType(
                    self.rows,
                    self.columns,
                    self.matrices,
                    self.row_bytes,
                    self.matrix_bytes,
                    data_type,
                );
            if self.offset_bytes == 0 {
                return Ok(MPSMatrix::initWithBuffer_descriptor(
                    MPSMatrix::alloc(),
                    &self.buffer,
                    &descriptor,
                ));
            }
            // The offset initialiser arrived in macOS 13; calling it on an older system would
            // raise an Objective-C exception, so ask the runtime first.
            if !MPSMatrix::class().responds_to(sel!(initWithBuffer:offset:descriptor:)) {
                return Err(KernelError::Unsupported(
                    "a matrix at a buffer offset needs MPSMatrix initWithBuffer:offset:\
                     descriptor: (macOS 13 or later)"
                        .into(),
                ));
            }
            Ok(MPSMatrix::initWithBuffer_offset_descriptor(
                MPSMatrix::alloc(),
                &self.buffer,
                self.offset_bytes,
                &descriptor,
            ))
        }
    }
}

fn mps_data_type(dtype: Dtype) -> Result<MPSDataType, KernelError> {
    match dtype {
        Dtype::F32 => Ok(MPSDataType::Float32),
        Dtype::F16 => Ok(MPSDataType::Float16),
        other => Err(KernelError::Unsupported(format!(
            "MPS matrix kernels take float32 and float16 operands, not {other}"
        ))),
    }
}

/// A contiguous vector inside a buffer.
#[derive(Clone)]
pub(crate) struct VectorView {
    pub buffer: Buffer,
    pub offset_bytes: usize,
    pub length: usize,
    pub dtype: Dtype,
}

impl VectorView {
    fn vector(&self) -> Result<Retained<MPSVector>, KernelError> {
        let needed = self.offset_bytes + self.length * numeric::element_bytes(self.dtype);
        if needed > self.buffer.length() {
            return Err(backend_error(
                "vector view exceeds its buffer",
                format!("{needed} > {} bytes", self.buffer.length()),
            ));
        }
        let data_type = mps_data_type(self.dtype)?;
        // SAFETY: plain constructors; the buffer is large enough (checked above) and is
        // retained by the MPSVector.
        unsafe {
            let descriptor =
                MPSVectorDescriptor::vectorDescriptorWithLength_dataType(self.length, data_type);
            if self.offset_bytes == 0 {
                return Ok(MPSVector::initWithBuffer_descriptor(
                    MPSVector::alloc(),
                    &self.buffer,
                    &descriptor,
                ));
            }
            if !MPSVector::class().responds_to(sel!(initWithBuffer:offset:descriptor:)) {
                return Err(KernelError::Unsupported(
                    "a vector at a buffer offset needs MPSVector initWithBuffer:offset:\
                     descriptor: (macOS 13 or later)"
                        .into(),
                ));
            }
            Ok(MPSVector::initWithBuffer_offset_descriptor(
                MPSVector::alloc(),
                &self.buffer,
                self.offset_bytes,
                &descriptor,
            ))
        }
    }
}
