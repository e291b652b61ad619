use crate::Kernels;
pub(crate) fn kernels() -> Option<&'static Kernels> {
    None
}
