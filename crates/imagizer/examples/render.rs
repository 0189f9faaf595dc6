//! Renders a phrase to a PNG file, as imagizer would store it:
//! `cargo run --release -p imagizer --example render -- "Фигосипед" out.png`.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(text), Some(path)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: render <text> <file.png>");
    };
    let png = imagizer::render::Renderer::new().render(&text)?;
    std::fs::write(&path, png)?;
    Ok(())
}
