//! SwAV math (work in progress in this commit).
#![no_std]
