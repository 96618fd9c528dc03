fn main() {
    println!("cutover: being written");
}
