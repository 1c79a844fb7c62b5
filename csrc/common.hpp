// Shared pybind11 helpers: numpy arrays in and out, shape checks that name the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace passk {
namespace py = pybind11;

// forcecast converts only when the caller passed another dtype; int64 C-contiguous input is not copied.
using I64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using F64Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

inline size_t length_1d(const py::array& a, const char* name) {
    if (a.ndim() != 1) throw std::invalid_argument(std::string(name) + " must be 1-D, got " + std::to_string(a.ndim()) + "-D");
    return static_cast<size_t>(a.shape(0));
}

inline void same_length(size_t a, size_t b, const char* na, const char* nb) {
    if (a != b)
        throw std::invalid_argument(std::string(na) + " and " + nb + " differ in length (" + std::to_string(a) + " vs " +
                                    std::to_string(b) + ")");
}

template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
    py::array_t<T> out(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

}  // namespace passk
