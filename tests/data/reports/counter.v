module counter8 (input clk, input rst, input en, output reg [7:0] q);
  always @(posedge clk)
    if (rst) q <= 8'd0;
    else if (en) q <= q + 8'd1;
endmodule

module top (input clk, input rst, input en, input [7:0] a, output [7:0] q, output [7:0] s);
  counter8 u_cnt (.clk(clk), .rst(rst), .en(en), .q(q));
  assign s = q ^ a;
endmodule
