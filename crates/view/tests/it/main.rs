mod api;
mod browser;
mod cdp;
mod fixture;
