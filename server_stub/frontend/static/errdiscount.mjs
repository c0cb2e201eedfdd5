// ES module entry point of the errdiscount widget. errdiscount.js is one
// self-contained script that sets globalThis.ErrDiscount whether it runs as a
// classic script or as a module; this file loads it once and re-exports it.
import "./errdiscount.js";

export const ErrDiscount = globalThis.ErrDiscount;
export const handleError = ErrDiscount.handleError;
export const showPending = ErrDiscount.showPending;
export const AlertUrlPolicy = ErrDiscount.AlertUrlPolicy;
export const formatAmount = ErrDiscount.formatAmount;
export const formatDate = ErrDiscount.formatDate;
export default ErrDiscount;
