// passkcore._core: only wires the register_<area>.cpp files together.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace passk {
void register_estimators(py::module_& m);
void register_coverage(py::module_& m);
void register_bootstrap(py::module_& m);
void register_metrics(py::module_& m);
void register_intervals(py::module_& m);
}

PYBIND11_MODULE(_core, m) {
    m.doc() = "passkcore native core: exact pass@k family estimators, curves, statistics, coverage bitsets.";
    passk::register_estimators(m);
    passk::register_coverage(m);
    passk::register_bootstrap(m);
    passk::register_metrics(m);
    passk::register_intervals(m);
}
