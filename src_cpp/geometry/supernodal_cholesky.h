// Sparse Cholesky factorisation P A P^T = L L^T with supernodes.
//
// Why not Eigen's SimplicialLLT: it is an up-looking, one-column-at-a-time
// algorithm whose inner loop is a scalar scatter.  On the Eq. 10 system (a
// bi-Laplacian, two-ring stencil) most of the work sits in groups of columns
// with identical sparsity near the top of the elimination tree.  Storing each
// such group (a supernode) as one dense block turns that work into dense
// Cholesky, triangular-solve and matrix-product kernels that Eigen vectorises,
// several times faster than the scalar loop.  No external solver (CHOLMOD,
// MKL) is needed, so the wheel stays dependency-free.
//
// Algorithm (left-looking supernodal, as in CHOLMOD):
//   symbolic: AMD ordering (Eigen), elimination tree, row patterns by
//             elimination-tree reach, column counts, relaxed supernodes;
//   numeric:  for each supernode J in order, gather A's columns, subtract the
//             update L_K L_K^T of every earlier supernode K whose rows reach J,
//             then factor the diagonal block and solve the block below it.
#pragma once
#include <memory>
#include <vector>

#include "types.h"

namespace pyfacerig {

class SupernodalCholesky {
 public:
  // A: symmetric positive definite, both triangles stored.  Returns false if
  // A is not numerically positive definite (a zero or negative pivot).
  // elimination_order (old indices in elimination order) defaults to AMD.
  bool compute(const SparseMatrixd& A, const std::vector<int>* elimination_order = nullptr);

  // As compute(), but when A (compressed) has exactly the sparsity pattern `analysed` was
  // computed for, its ordering and symbolic analysis are reused and only the numeric
  // factorisation runs: the same factor, bit for bit, without the analysis.  Otherwise (or
  // with analysed == nullptr) this is compute(A, elimination_order).  Callers keep one
  // analysed solver per mesh (a template) and factor each new matrix on it.
  bool compute_like(const SupernodalCholesky* analysed, const SparseMatrixd& A,
                    const std::vector<int>* elimination_order = nullptr);

  // A copy holding only the ordering and symbolic analysis (no numeric factor): what
  // compute_like() needs, at a fraction of the memory.
  SupernodalCholesky symbolic_copy() const;

  // Eigen's approximate minimum degree ordering of A's pattern.
  static std::vector<int> fill_reducing_order(const SparseMatrixd& A);

  // X = A^-1 B for three right-hand sides at once; X may alias B.
  void solve3(const RowMatrixX3d& B, RowMatrixX3d& X) const;

 private:
  bool analyse(const SparseMatrixd& A);
  bool factorise(const SparseMatrixd& A);
  void forward(int s, double* y, double* work) const;
  void backward(int s, double* y, double* work) const;

  bool same_pattern(const SparseMatrixd& A) const;

  int n_ = 0;
  std::vector<int> pattern_outer_, pattern_inner_;  // A's structure as analysed (compressed)
  std::vector<int> new_of_old_;      // permutation: row i of A is row new_of_old_[i] of P A P^T
  std::vector<int> super_first_;     // supernode s owns columns [super_first_[s], super_first_[s+1])
  std::vector<int> super_of_column_;
  std::vector<long long> row_begin_;     // rows of supernode s: rows_[row_begin_[s] .. row_begin_[s+1])
  std::vector<int> rows_;
  std::vector<long long> value_begin_;   // its dense column-major block (rows x width)
  std::unique_ptr<double[]> values_;
};

}  // namespace pyfacerig
