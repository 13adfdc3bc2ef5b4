// ESLint flat config: typescript-eslint's recommended rules. The native binding is untyped by design (src/torch/
// native.ts exports `any`; src/torch/*.ts give it types), hence no-explicit-any is off.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'native/build/', 'data/', 'runs/', 'models/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
