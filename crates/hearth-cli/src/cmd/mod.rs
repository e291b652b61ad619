pub mod bench;
pub mod perplexity;
pub mod plan;
pub mod run;
pub mod serve;
pub mod show;
pub mod tokenize;
