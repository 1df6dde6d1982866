//! Go's `text/template`, faithfully: the lexer ([`lex`]), the parser
//! ([`parse`], one tree per template and definition) and the executor
//! ([`exec`]). Helm's functions are looked up in [`crate::helm::funcs`].

pub mod exec;
pub mod lex;
pub mod parse;

#[cfg(test)]
mod tests;
