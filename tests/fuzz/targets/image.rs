//! Image decoding with the server's limits: the side limit is checked from the header before
//! any pixel is decoded, so no input may allocate more than the limit allows.
#![no_main]
use libfuzzer_sys::fuzz_target;
use walkout::vision::image_io;

const MAX_SIDE: u32 = 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = image_io::decode_limited(data, "fuzz", MAX_SIDE) {
        assert!(img.width() <= MAX_SIDE && img.height() <= MAX_SIDE, "decoded {}x{} past the limit", img.width(), img.height());
        assert_eq!(img.as_raw().len(), img.width() as usize * img.height() as usize * 3);
    }
});
