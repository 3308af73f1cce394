//! Image decoding with the server's limits: the side limit is checked from the header before
//! any pixel is decoded, so no input may allocate more than the limit allows.
#![no_main]
use libfuzzer_sys::fuzz_target;
use walkout::vision::image_io;

const MAX_SIDE: u32 = 1024;

fuzz_target!(
    init: {
        // a decoder's panic is contained by decode_limited (a Decode error): print it, but
        // keep libfuzzer-sys's hook from aborting on it. A panic that escapes
        // decode_limited, or a failed assertion below, still ends the run as a crash
        // (libfuzzer-sys aborts on any unwind out of the target).
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    },
    |data: &[u8]| {
        if let Ok(img) = image_io::decode_limited(data, "fuzz", MAX_SIDE) {
            assert!(img.width() <= MAX_SIDE && img.height() <= MAX_SIDE, "decoded {}x{} past the limit", img.width(), img.height());
            assert_eq!(img.as_raw().len(), img.width() as usize * img.height() as usize * 3);
        }
    }
);
