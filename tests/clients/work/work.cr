# work.cr - compiled and run by tests/clients/work/crystal.
class Node
  property value : Int64
  property children : Array(Node)

  def initialize(@value)
    @children = [] of Node
  end
end

def build(d : Int32, v : Int64) : Node
  n = Node.new(v)
  if d > 0
    3.times { |i| n.children << build(d - 1, v * 3 + i) }
  end
  n
end

def sum(n : Node) : Int64
  n.children.reduce(n.value) { |a, c| a + sum(c) }
end

h = {} of String => Int64
200_000.times { |i| h["k#{i}"] = i.to_i64 * i }
t = build(9, 1_i64)
words = (0...50_000).map { |i| (i * 7919 % 100_003).to_s }.sort
puts h.size, h["k777"], sum(t), words.first, words.last
