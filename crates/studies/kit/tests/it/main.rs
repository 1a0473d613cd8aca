//! The answer reader against an in-process scripted model: each path's numbers computed
//! by hand.

mod reader;
